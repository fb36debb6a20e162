from rankguard.bench.readme import main; raise SystemExit(main())
