#!/usr/bin/env bash
# Starts a grandchild that would outlive the job if only bash were killed.
sleep 100 &
echo "child $!" > "$1"
wait
