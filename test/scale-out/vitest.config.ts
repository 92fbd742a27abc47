import { packageTestConfig } from '../../vitest.shared.ts';

// Starts its own cluster (PgBouncer, Redis, servers, workers, HAProxy) in the test itself.
export default packageTestConfig('scale-out', { globalSetup: [] });
