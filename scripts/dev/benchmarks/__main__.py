"""`python -m scripts.dev.benchmarks`: what `scripts/bench` runs."""
from scripts.dev.benchmarks.run import main

raise SystemExit(main())
