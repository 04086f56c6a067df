"""`python -m console.cli`: the same as `returns-console`."""
from console.cli.root import main

raise SystemExit(main())
