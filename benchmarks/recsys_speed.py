from rankguard.bench.recsys_speed import main; raise SystemExit(main())
