import sys

from isbert.cli import main

sys.exit(main())
