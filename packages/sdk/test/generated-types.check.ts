// Compiled by `pnpm typecheck`: the generated router types (src/router.gen.ts) must give
// every procedure exactly the input and output the server's own router types give it.
import type {
  AppErrorData as ServerErrorData,
  RouterInputs as ServerInputs,
  RouterOutputs as ServerOutputs,
  Permission as ServerPermission,
} from '@app/server/router';
import type { AppErrorData, Permission, RouterInputs, RouterOutputs } from '../src/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <T extends true>(): T => true as T;

same<Equal<RouterInputs, ServerInputs>>();
same<Equal<RouterOutputs, ServerOutputs>>();
same<Equal<AppErrorData, ServerErrorData>>();
same<Equal<Permission, ServerPermission>>();
