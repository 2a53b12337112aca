# ~/.bashrc: executed by bash(1) for non-login shells.
[ -z "$PS1" ] && return
HISTCONTROL=ignoreboth
HISTSIZE=1000
HISTFILESIZE=2000
shopt -s histappend checkwinsize
PS1='${debian_chroot:+($debian_chroot)}\u@\h:\w\$ '
alias ls='ls --color=auto'
alias ll='ls -alF'
