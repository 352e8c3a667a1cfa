"""``python -m voiceguide``: the command line, as the ``voiceguide`` console script runs it."""

from voiceguide.console import main

main()
