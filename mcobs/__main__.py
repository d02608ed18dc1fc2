from mcobs.cli import main

raise SystemExit(main())
