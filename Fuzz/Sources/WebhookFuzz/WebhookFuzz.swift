import Foundation
import OcrolusAPI

/// One fuzz input: the first byte picks what to exercise, the rest is the data.
/// - 0: the payload decoder on the raw body;
/// - 1: the signature verifier, with the input split into timestamp, request id, signature, body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let selector = bytes.first else { return 0 }
    let data = Array(bytes.dropFirst())
    if selector % 2 == 0 {
        if let decoded = try? DecodedWebhook.decode(data) {
            // Whatever decodes must name a Book.
            precondition(decoded.bookUUID != nil || decoded.bookPK != nil)
        }
    } else {
        let parts = data.split(separator: 0x0A, maxSplits: 3, omittingEmptySubsequences: false).map { Array($0) }
        let field = { (index: Int) -> String? in index < parts.count ? String(decoding: parts[index], as: UTF8.self) : nil }
        let verifier = Fuzzing.verifier
        _ = try? verifier.verify(
            body: parts.count > 3 ? parts[3] : [],
            timestamp: field(0),
            requestID: field(1),
            signature: field(2),
            now: Date(timeIntervalSince1970: 1_774_015_331)
        )
    }
    return 0
}

enum Fuzzing {
    static let verifier: WebhookVerifier = {
        do {
            return try WebhookVerifier(secrets: ["whsec-test-0123456789abcdef", "a-second-secret-for-rotation"])
        } catch {
            preconditionFailure("the fuzz secrets are valid: \(error)")
        }
    }()
}

/// SwiftPM links debug executables with `main` aliased to `<module>_main` (for testable
/// executables), so libFuzzer's own `main` is not used: this entry point starts its driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt

/// The fuzzer's entry point: hands libFuzzer's driver the target (`-sanitize=fuzzer`).
@_cdecl("WebhookFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzz(data, size) }
}
