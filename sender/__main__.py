import sys

from sender.cli import main

sys.exit(main())
