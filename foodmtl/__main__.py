import sys

from foodmtl.cli import main

sys.exit(main())
