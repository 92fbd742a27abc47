/** The time, as epoch milliseconds: injectable so tests can move it (code and token expiry). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
