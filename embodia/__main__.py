from embodia import main

main()
