import type { AppErrorCode } from './errors/index.ts';

/**
 * A plain Fastify route (not a procedure) as the OpenAPI document shows it. Each is
 * described beside its handler (src/http/) and app.ts hands the list to the document
 * builder (src/rest/openapi.ts): the transports share this type, not each other's code.
 * The document marks them `x-plain-route`.
 */
export interface DocumentedRoute {
  method: 'GET' | 'POST';
  /** OpenAPI form, under /api: `/auth/oauth/{provider}/start`. */
  path: string;
  summary: string;
  description: string;
  tags: string[];
  parameters: {
    in: string;
    name: string;
    required?: boolean;
    description?: string;
    schema?: Record<string, unknown>;
  }[];
  /** A body of these fields, by name: a form (Apple's POST) or a multipart upload. */
  body?: { type: 'form' | 'multipart'; fields: Record<string, { description: string; binary?: boolean }> };
  /** The success answer: a redirect, JSON of a named schema, or bytes. */
  success:
    | { status: 302 | 303; description: string; redirect: true }
    | { status: 200 | 201; description: string; schema: string }
    | { status: 200; description: string; binary: true };
  /** Other answers that are not errors (a range, a revalidation, a redirect), with what each carries. */
  otherAnswers?: { status: 206 | 302 | 304 | 416; description: string; headers?: Record<string, string> }[];
  /** The bearer token: required, or optional (public resources open without it). */
  bearer?: 'required' | 'optional';
  errors: AppErrorCode[];
}
