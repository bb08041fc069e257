from purea2c.cli import main

raise SystemExit(main())
