<?php
// A tiny page for php-cgi under fcgi-prefork: which worker answered, and for a POST what it got.
header('Content-Type: text/plain; charset=utf-8');
echo 'Hello from php-cgi pid ', getmypid(), "\n";
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $body = file_get_contents('php://input');
    echo 'POST ', strlen($body), ' bytes, sha256 ', hash('sha256', $body), "\n";
    foreach ($_POST as $name => $value) {
        echo 'field ', $name, '=', $value, "\n";
    }
}
