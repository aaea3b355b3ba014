from mnetcost.cli import main

main()
