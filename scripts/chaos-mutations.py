"""The bugs of issue 14 (and of issue 15), re-introduced one at a time for the mutation check of
the chaos search (docs/testing.md). Usage: chaos-mutations.py NAME apply|revert (from the
repository root); `scripts/mutation-check.sh` drives it. Each mutation is an exact text
replacement: when the code moves on, `apply` says which pattern it no longer finds."""
import os
import sys


def edited(path, pairs):
    """The text of `path` with `pairs` replaced, or an exit naming the pattern not found once."""
    text = open(path).read()
    for old, new in pairs:
        if text.count(old) != 1:
            raise SystemExit(f"{path}: pattern not found once: {old[:70]!r}")
        text = text.replace(old, new)
    return text


M = {
 'M1-bare404-gone': [('Sources/OcrolusAPI/BookStatusResponse.swift', [(
    """        let endpoint = "book_status"
        if let error = declaredError(""",
    """        let endpoint = "book_status"
        if httpStatus == 404 { return BookStatusResult(uuid: nil, pk: nil, snapshot: .gone) }  // MUTATION
        if let error = declaredError(""")])],
 'M2-stale-answer-reopens': [('Sources/BookWatchCore/BookMachine+Transitions.swift', [(
    """        guard phase == .retrieving || phase == .complete || (phase == .failed && !failedWithoutJob) else { return nil }""",
    """        guard phase == .retrieving || phase == .complete || (phase == .failed && !failedWithoutJob) else { return nil }
        if true { return nil }  // MUTATION""")])],
 # Any input reaches a tombstone and brings the Book back (webhooks and answers included).
 'M3-untrack-not-sticky': [('Sources/BookWatchStore/TransitionPlan.swift', [(
    """        case .command(.track(.operator)), .command(.track(.created)): .command(.track(.operator))
        default: nil""",
    """        case .command(.track(.operator)), .command(.track(.created)): .command(.track(.operator))
        default: input  // MUTATION""")])],
 'M4-no-fence': [('Sources/BookWatchStore/TransitionDriver.swift', [(
    """    package static func holdFence(_ key: String, _ generation: Int, _ claim: JobClaim) -> SQLStep {
        SQLStep(""", """    package static func holdFence(_ key: String, _ generation: Int, _ claim: JobClaim) -> SQLStep {
        if true { return SQLStep("SELECT 1") }  // MUTATION
        return SQLStep(""")])],
 'M5-claim-counts-attempt': [('Sources/BookWatchStore/SQL/JobStatements.swift', [(
    """claims = claims + 1, view_confirmed = \\(.false),""", """claims = claims + 1, attempts = attempts + 1, view_confirmed = \\(.false),""")])],
 'M6-no-view-after': [('Sources/BookWatchService/Watcher/Watcher+Analytics.swift', [(
    """        guard try await viewAfterAgrees(job, log: log) else { return }
""", """        // MUTATION guard try await viewAfterAgrees(job, log: log) else { return }
""")])],
 'M7-grant-before-token': [('Sources/OcrolusAPI/OcrolusClient.swift', [(
    """            let token = try await tokens.token()
            let waited = try await limiter.acquire(priority)""", """            let waited = try await limiter.acquire(priority)  // MUTATION
            let token = try await tokens.token()""")])],
}
if len(sys.argv) != 3 or sys.argv[1] not in M or sys.argv[2] not in ('apply', 'revert'):
    raise SystemExit('usage: chaos-mutations.py ' + '|'.join(M) + ' apply|revert')
name, mode = sys.argv[1], sys.argv[2]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# Every file checked before any is written: a mutation is applied (or reverted) whole or not at all.
texts = [(os.path.join(root, path), edited(os.path.join(root, path), pairs if mode == "apply" else [(b, a) for a, b in pairs]))
         for path, pairs in M[name]]
for path, text in texts:
    open(path, "w").write(text)
