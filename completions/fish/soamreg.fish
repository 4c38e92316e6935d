complete -c soamreg -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamreg -s f -l force -d 'Update even if the change ends the workload of open sessions whose type or service it changes'
complete -c soamreg -l json -d 'Print the registered application as JSON, with "action" and "warnings"'
complete -c soamreg -s h -l help -d 'Print help'
complete -c soamreg -s V -l version -d 'Print version'
