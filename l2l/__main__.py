from l2l.cli import main

main()
