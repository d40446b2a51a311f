from llm_gateway.cli import main

raise SystemExit(main())
