import { describe, expect, it } from 'vitest';
import { chosen } from '../only.ts';

const scenarios = [
  { name: 'raw Fastify: GET /health', is: 'raw /health' },
  { name: 'raw Fastify + Kysely: GET /notes', is: 'hand-written GET /notes' },
  { name: 'tRPC query health.live', baseline: 'raw /health' },
  { name: 'notes.list, signed in', baseline: 'hand-written GET /notes' },
  { name: 'REST GET /api/notes, signed in', baseline: 'hand-written GET /notes' },
];
const names = (list: { name: string }[]) => list.map((scenario) => scenario.name);

describe('pnpm bench --only', () => {
  it('keeps the scenarios whose name contains the text, in any case, with their baselines, in order', () => {
    expect(names(chosen(scenarios, 'NOTES.LIST'))).toEqual([
      'raw Fastify + Kysely: GET /notes',
      'notes.list, signed in',
    ]);
    expect(names(chosen(scenarios, 'signed in'))).toEqual([
      'raw Fastify + Kysely: GET /notes',
      'notes.list, signed in',
      'REST GET /api/notes, signed in',
    ]);
  });

  it('keeps a baseline named alone, and nothing when nothing matches', () => {
    expect(names(chosen(scenarios, 'raw fastify: get'))).toEqual(['raw Fastify: GET /health']);
    expect(chosen(scenarios, 'graphql')).toEqual([]);
  });
});
