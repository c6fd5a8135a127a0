from feedtax.cli import main

main()
