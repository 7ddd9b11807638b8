from testdock.cli import main

main()
