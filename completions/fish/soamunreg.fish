complete -c soamunreg -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamunreg -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamunreg -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamunreg -s f -l force -d 'Abort the application\'s open sessions and remove it anyway'
complete -c soamunreg -l json -d 'Print {"action": "unregistered", "app": APP} as JSON'
complete -c soamunreg -s h -l help -d 'Print help'
complete -c soamunreg -s V -l version -d 'Print version'
