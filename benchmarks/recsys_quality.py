from rankguard.bench.recsys_quality import main; raise SystemExit(main())
