from solver_core.cli import main

main()
