import sys

from devkit.rehearsal.run import main

sys.exit(main())
