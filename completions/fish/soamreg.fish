complete -c soamreg -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamreg -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamreg -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamreg -s f -l force -d 'Update even if the change ends the workload of open sessions whose type or service it changes'
complete -c soamreg -s v -l verbose -d 'Also list each part of the profile that a warning stands for (the stock <Control> settings soam does not act on)'
complete -c soamreg -l json -d 'Print the registered application as JSON, with "action" and "warnings"'
complete -c soamreg -s h -l help -d 'Print help'
complete -c soamreg -s V -l version -d 'Print version'
