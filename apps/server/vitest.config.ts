import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

export default mergeConfig(packageTestConfig('server'), {
  test: { setupFiles: ['./test/setup-error-observations.ts'] },
});
