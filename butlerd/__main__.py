import sys

from butlerd.cli import main

sys.exit(main())
