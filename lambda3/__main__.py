from lambda3.cli import main

raise SystemExit(main())
