import BookWatchCLI
import Foundation

exit(await BookWatchCommand.run(arguments: Array(CommandLine.arguments.dropFirst())))
