import { packageTestConfig } from '../vitest.shared.ts';

// No databases: these tests only run the command line, which answers before starting anything.
export default packageTestConfig('bench', { globalSetup: [] });
