import { strict as assert } from 'node:assert';
import { IdleTimer, type Timers } from '../../src/server/idleTimer';

/** A clock that moves only when told: timers fire on `advance`. */
class ManualClock implements Timers {
  now = 0;
  private pending = new Map<number, { at: number; callback: () => void }>();
  private next = 1;
  setTimeout(callback: () => void, ms: number): number {
    this.pending.set(this.next, { at: this.now + ms, callback });
    return this.next++;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [handle, { at, callback }] of [...this.pending]) {
      if (at > this.now) continue;
      this.pending.delete(handle);
      callback();
    }
  }
}

describe('unloading the idle model (IdleTimer)', () => {
  let clock: ManualClock;
  let delayMs: number;
  let unloads: number;
  let timer: IdleTimer;
  beforeEach(() => {
    clock = new ManualClock();
    delayMs = 1000;
    unloads = 0;
    timer = new IdleTimer(
      () => delayMs,
      () => unloads++,
      clock,
    );
  });

  it('unloads once the ready server has been unused for the delay', () => {
    timer.start();
    clock.advance(999);
    assert.equal(unloads, 0);
    clock.advance(1);
    assert.equal(unloads, 1);
  });

  it('waits while anything holds it, and counts from when the last hold ends', () => {
    timer.start();
    clock.advance(500);
    const generation = timer.hold();
    const readAhead = timer.hold();
    clock.advance(5000);
    generation.dispose();
    generation.dispose(); // twice is once
    clock.advance(5000);
    assert.equal(unloads, 0, 'unloaded during a read-ahead');
    readAhead.dispose();
    clock.advance(999);
    assert.equal(unloads, 0);
    clock.advance(1);
    assert.equal(unloads, 1);
  });

  it('does nothing while the server is not ready, or once it stopped', () => {
    timer.hold().dispose();
    clock.advance(10_000);
    assert.equal(unloads, 0, 'counted before the server was ready');
    timer.start();
    clock.advance(500);
    timer.cancel();
    clock.advance(10_000);
    assert.equal(unloads, 0, 'counted after the server stopped');
  });

  it('reads the delay when a quiet spell begins, and 0 never unloads', () => {
    delayMs = 0;
    timer.start();
    clock.advance(1e9);
    assert.equal(unloads, 0);
    delayMs = 200;
    timer.hold().dispose();
    clock.advance(200);
    assert.equal(unloads, 1);
  });
});
