import BookWatchClocks
import Foundation
import Synchronization
import Testing

@testable import OcrolusAPI

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(base: 1, cap: 30, maxAttempts: 5)

    @Test func fullJitterWithinAnExponentialCappedCeiling() {
        #expect(policy.delay(afterAttempt: 1, unitRandom: 1) == 1)
        #expect(policy.delay(afterAttempt: 3, unitRandom: 1) == 4)
        #expect(policy.delay(afterAttempt: 10, unitRandom: 1) == 30)
        #expect(policy.delay(afterAttempt: 10, unitRandom: 0) == 0)
        #expect(policy.delay(afterAttempt: 4, unitRandom: 0.5) == 4)
        #expect(policy.delay(afterAttempt: 1000, unitRandom: 1) == 30)
    }

    @Test func retryAfterIsALowerBound() {
        #expect(policy.delay(afterAttempt: 1, retryAfter: 12, unitRandom: 0.1) == 12)
        #expect(policy.delay(afterAttempt: 6, retryAfter: 2, unitRandom: 1) == 30)
    }

    @Test func retryAfterInBothForms() {
        let now = Date(timeIntervalSince1970: 1_774_000_000)
        #expect(RetryAfter.parse("7", now: now) == 7)
        #expect(RetryAfter.parse(" 120 ", now: now) == 120)
        #expect(RetryAfter.parse(RetryAfter.httpDate(now.addingTimeInterval(90)), now: now) == 90)
        #expect(RetryAfter.parse("Fri, 20 Mar 2026 09:48:10 GMT", now: now) == 90)
        #expect(RetryAfter.parse("Friday, 20-Mar-26 09:48:10 GMT", now: now) == 90)
        #expect(RetryAfter.parse("Fri Mar 20 09:48:10 2026", now: now) == 90)
        #expect(RetryAfter.parse(RetryAfter.httpDate(now.addingTimeInterval(-50)), now: now) == 0)
        #expect(RetryAfter.parse(nil, now: now) == nil)
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryAfter.parse("-5", now: now) == nil)
        #expect(RetryAfter.parse("99999999999999", now: now) == nil)
        // A far-future date or a huge delay is clamped to ten minutes.
        #expect(RetryAfter.parse("86400", now: now) == 600)
        #expect(RetryAfter.parse(RetryAfter.httpDate(now.addingTimeInterval(7200)), now: now) == 600)
    }

    @Test func withRetriesRetriesOnlyTransientErrors() async throws {
        let clock = ManualClock()
        let attempts = Counter()
        let sleeper = Task {
            try await withRetries(policy: policy, clock: clock, random: { 0 }) {
                let n = attempts.increment()
                if n < 3 { throw OcrolusError(.transient, endpoint: "x", httpStatus: 503, message: "busy", retryAfter: 5) }
                return n
            }
        }
        // Each retry waits the Retry-After (5 s) on the clock; advance until done.
        for _ in 0..<100 where attempts.value < 3 {
            await Task.yield()
            clock.advance(by: 5)
        }
        #expect(try await sleeper.value == 3)

        let permanent = Counter()
        await #expect(throws: OcrolusError.self) {
            try await withRetries(
                policy: policy,
                clock: clock,
                random: { 0 },
                {
                    _ = permanent.increment()
                    throw OcrolusError(.permanent, endpoint: "x", httpStatus: 403, code: 2102, message: "no permission")
                }
            )
        }
        #expect(permanent.value == 1)
    }
}

/// A thread-safe counter for tests.
final class Counter: Sendable {
    private let state = Synchronization.Mutex(0)
    @discardableResult func increment() -> Int {
        state.withLock {
            $0 += 1
            return $0
        }
    }
    var value: Int { state.withLock { $0 } }
}
