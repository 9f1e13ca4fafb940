import Core
import Foundation
import Synchronization
import Testing

@Suite("SIGTERM for the whole process")
struct TerminationSignalTests {
    /// Two parts that start listening at the same moment both hear the signal (each used to set
    /// the signal up itself, and the second could undo the first's handler).
    @Test func listenersThatStartTogetherAllHearSIGTERM() {
        let heard = Atomic<Int>(0)
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                TerminationSignal.shared.onReceipt { heard.add(1, ordering: .relaxed) }
            }
        }
        group.wait()
        usleep(100_000)
        kill(getpid(), SIGTERM)

        var waited = 0
        while heard.load(ordering: .relaxed) < 2 && waited < 100 {
            usleep(20_000)
            waited += 1
        }
        #expect(heard.load(ordering: .relaxed) == 2)
        // The test process itself should still stop on Ctrl-C and on a plain kill.
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
    }
}
