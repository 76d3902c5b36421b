from canaryctl.cli import main_exit

main_exit()
