import { packageTestConfig } from '../vitest.shared.ts';

// No databases: these tests read the manifests and the compose files only.
export default packageTestConfig('deploy', { globalSetup: [] });
