complete -c soamd -l slots -d 'Service instances that may run at once (default: number of CPUs)' -r
complete -c soamd -l config -d 'Agent config file (default: $XDG_CONFIG_HOME/soam/soamd.yaml)' -r -F
complete -c soamd -l shared -d 'Serve every user (socket 0666); sessions belong to the uid that created them'
complete -c soamd -s v -l verbose -d 'More log output (-v info, -vv debug); RUST_LOG overrides'
complete -c soamd -s h -l help -d 'Print help'
complete -c soamd -s V -l version -d 'Print version'
