#!/usr/bin/env python3
"""Every `package` declaration in Sources/ has a `///` doc comment (swift-format's
AllPublicDeclarationsHaveDocumentation checks public ones only). Prints each one without and exits
1; `.ci/run` runs it beside `swift format lint`."""
import glob
import re
import sys

DECLARATION = re.compile(
    r'(@\w+(\(.*\))?\s+)*package\s+(static\s+|mutating\s+|nonisolated\s+|final\s+|private\(set\)\s+)*'
    r'(func|var|let|struct|enum|init|class|protocol|actor|subscript|typealias|case)\b'
)
missing = []
for path in sorted(glob.glob('Sources/**/*.swift', recursive=True)):
    lines = open(path, encoding='utf-8').read().split('\n')
    for index, line in enumerate(lines):
        if not DECLARATION.match(line.strip()):
            continue
        above = index - 1
        while above >= 0 and lines[above].strip().startswith('@'):
            above -= 1
        if above < 0 or not lines[above].strip().startswith('///'):
            missing.append(f'{path}:{index + 1}: package declaration without a doc comment: {line.strip()[:90]}')
print('\n'.join(missing))
sys.exit(1 if missing else 0)
