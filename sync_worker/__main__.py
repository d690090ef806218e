from sync_worker.cli import main

if (
    __name__ == "__main__"
):  # a spawned planning process (sync_worker.plan_pool) must not run the command again
    main()
