from barapi.cli.app import main

main()
