from sync_worker.cli import main

main()
