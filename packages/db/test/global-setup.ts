import { setupTestDatabases } from '../src/testing.ts';

export default () => setupTestDatabases('db');
