from cardiowatch.cli import main

main()
