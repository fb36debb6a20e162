from rankguard.bench.pairwise import main; raise SystemExit(main())
