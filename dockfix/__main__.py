from dockfix.cli import main

raise SystemExit(main())
