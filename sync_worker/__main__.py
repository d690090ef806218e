from sync_worker.cli import main

# Guarded: a spawned planning process (sync_worker.plan_pool) imports this module and must not run the command.
if __name__ == "__main__":
    main()
