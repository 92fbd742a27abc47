import { setupTestDatabases } from '@app/db/testing';

export default () => setupTestDatabases('sdk');
