<?php
header('Content-Type: text/plain');
echo ($_SERVER['REQUEST_URI'] ?? '') === '/64k' ? str_repeat('x', 65536) : "Hello, world!\n";
