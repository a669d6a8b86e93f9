from launchbay.cli.main import main

main()
