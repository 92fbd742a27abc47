/**
 * Stops calling a dependency that stopped answering, so requests fail at once instead of
 * each waiting for its own timeout. Closed: calls go through; `threshold` consecutive
 * failures open it. Open: calls fail at once for `cooldownMs`. Then one call at a time
 * probes (half-open): a success closes it, a failure opens it again.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openUntil = 0;
  #probing = false;

  constructor(options: { threshold: number; cooldownMs: number; now?: () => number }) {
    this.#threshold = options.threshold;
    this.#cooldownMs = options.cooldownMs;
    this.#now = options.now ?? Date.now;
  }

  get isOpen(): boolean {
    return this.#failures >= this.#threshold;
  }

  /**
   * Whether a call may go out now. When it returns true the caller must report the outcome
   * with `succeeded()` or `failed()`.
   */
  allow(): boolean {
    if (!this.isOpen) return true;
    if (this.#probing || this.#now() < this.#openUntil) return false;
    this.#probing = true;
    return true;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probing = false;
  }

  failed(): void {
    this.#failures += 1;
    this.#probing = false;
    if (this.isOpen) this.#openUntil = this.#now() + this.#cooldownMs;
  }
}
